#!/bin/sh
# Runs once, when the compose PostgreSQL volume is first initialised (as the superuser).
# Creates the roles of deploy/README.md "PostgreSQL roles" and the `privet` database:
#   privet_owner  LOGIN, owns the database and every table, runs `privet db upgrade`
#   privet_app    NOLOGIN; migration 0002 grants it only SELECT, INSERT on the ledger
#                 tables, deploy/postgres/app-grants.sql grants it DML on the others
#   privet        LOGIN, member of privet_app: what the gateway and the workers use
set -eu
owner_pw="$(cat /run/secrets/privet_owner_password)"
app_pw="$(cat /run/secrets/privet_app_password)"

psql -v ON_ERROR_STOP=1 --username "$POSTGRES_USER" --dbname "$POSTGRES_DB" \
    -v owner_pw="$owner_pw" -v app_pw="$app_pw" <<'SQL'
CREATE ROLE privet_owner LOGIN PASSWORD :'owner_pw';
CREATE ROLE privet_app NOLOGIN;
CREATE ROLE privet LOGIN PASSWORD :'app_pw' IN ROLE privet_app;
CREATE DATABASE privet OWNER privet_owner;
\connect privet
REVOKE ALL ON SCHEMA public FROM PUBLIC;
GRANT USAGE ON SCHEMA public TO privet_app;
ALTER SCHEMA public OWNER TO privet_owner;
SQL
