#!/bin/sh
# Runs once, when the influxdb:2 container sets itself up (docker-entrypoint-initdb.d).
# Maps the InfluxQL database/retention policy the dashboards query onto the bucket that
# Hallmark writes, so that InfluxQL (/query) answers over the v2 bucket.
set -eu
influx v1 dbrp create \
  --bucket-id "${DOCKER_INFLUXDB_INIT_BUCKET_ID}" \
  --db "${HALLMARK_INFLUX_DB:-hallmark}" \
  --rp autogen \
  --default
