# Fabric notebook source

# CELL ********************
# Build gold sales facts from the silver layer.
sales = spark.table("SILVER_Sales_Lakehouse.sales_clean")
sales.groupBy("region", "month").sum("amount").write.mode("overwrite").saveAsTable("fact_sales_monthly")
