-- Cost per lead by publisher_platform x platform_position (report by_placement of insights.reports): see macros/meta_breakdown_mart.sql.
{{ meta_breakdown_mart('stg_meta__insights_by_placement', ['publisher_platform','platform_position']) }}
