-- Role and database for the tradebridge persister (persist/). No tables
-- here: the schema is the versioned migrations of persist/migrations/,
-- applied by `tradebridge migrate --config FILE` or, with [persist]
-- migrate_on_start = true, by the bridge when it starts (as the role
-- created here, which owns the database). See persist/SCHEMA.md.
--
-- Run once by the postgres image's entrypoint on an empty data directory
-- (compose mounts this file in /docker-entrypoint-initdb.d/). By hand:
--
--   TRADEBRIDGE_DB_PASSWORD=... psql -v ON_ERROR_STOP=1 -U postgres -f init.sql
--
-- The password comes from the environment (psql 15's \getenv), never from
-- this file. When TRADEBRIDGE_DB_PASSWORD is unset the script stops with an
-- error instead of creating a role without a password.

\getenv tradebridge_password TRADEBRIDGE_DB_PASSWORD
\if :{?tradebridge_password}
\else
  \warn 'TRADEBRIDGE_DB_PASSWORD is not set: the tradebridge role was not created'
  SELECT 1/0 AS tradebridge_db_password_missing;
\endif

CREATE ROLE tradebridge LOGIN PASSWORD :'tradebridge_password';
CREATE DATABASE tradebridge OWNER tradebridge;
-- Only the persister's role connects (and the superuser).
REVOKE CONNECT, TEMPORARY ON DATABASE tradebridge FROM PUBLIC;
GRANT CONNECT ON DATABASE tradebridge TO tradebridge;
