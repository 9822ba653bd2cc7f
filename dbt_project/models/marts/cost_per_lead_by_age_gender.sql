-- Cost per lead by age x gender (report by_age_gender of insights.reports): see macros/meta_breakdown_mart.sql.
{{ meta_breakdown_mart('stg_meta__insights_by_age_gender', ['age','gender']) }}
