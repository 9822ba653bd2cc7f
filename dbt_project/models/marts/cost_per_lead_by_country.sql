-- Cost per lead by country (report by_country of insights.reports): see macros/meta_breakdown_mart.sql.
{{ meta_breakdown_mart('stg_meta__insights_by_country', ['country']) }}
