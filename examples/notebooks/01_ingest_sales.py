# Fabric notebook source

# CELL ********************
# Ingest raw sales extracts into the bronze lakehouse.
df = spark.read.option("header", True).csv("Files/landing/sales/*.csv")
df.write.mode("append").format("delta").saveAsTable("sales_raw")
