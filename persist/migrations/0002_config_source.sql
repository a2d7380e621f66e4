-- 0002_config_source: accounts, keys and follows as the bridge's
-- configuration source ([persist] config_source = "postgres"). The bridge
-- builds [[account]] and [[follow]] tables from these rows and validates
-- them exactly as a TOML file's; a commit that changes them notifies the
-- running bridge (channel tradebridge_config), which applies it live.
-- Every column is described in persist/SCHEMA.md.

CREATE TABLE config_accounts (
    login          numeric(20,0)    PRIMARY KEY,
    role           text             NOT NULL CHECK (role IN ('master', 'slave')),
    server         text             NOT NULL,
    platform       text             CHECK (platform IN ('mt4', 'mt5')),
    key_sha256     text             NOT NULL CHECK (key_sha256 ~ '^[0-9a-f]{64}$'),
    enabled        boolean          NOT NULL DEFAULT true,
    -- A TOML array of { key_sha256, expires } inline tables, or ''.
    previous_keys  text             NOT NULL DEFAULT '',
    -- Further [[account]] keys (risk limits, contracts) as TOML lines.
    settings       text             NOT NULL DEFAULT '',
    updated_at     timestamptz      NOT NULL DEFAULT now()
);

CREATE TABLE config_follows (
    slave          numeric(20,0)    NOT NULL,
    master         numeric(20,0)    NOT NULL,
    -- The [[follow]] keys besides slave and master, as TOML lines.
    rules          text             NOT NULL DEFAULT '',
    updated_at     timestamptz      NOT NULL DEFAULT now(),
    PRIMARY KEY (slave, master)
);
CREATE INDEX config_follows_master ON config_follows (master);

-- One row once the tables were first filled from a configuration file (or
-- by an operator): from then on empty tables mean "no accounts", and the
-- file is never imported again.
CREATE TABLE config_source_state (
    id             integer          PRIMARY KEY CHECK (id = 1),
    imported_at    timestamptz      NOT NULL DEFAULT now()
);

CREATE FUNCTION config_changed() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify('tradebridge_config', TG_TABLE_NAME);
    RETURN NULL;
END;
$$;
CREATE TRIGGER config_accounts_changed AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON config_accounts
    FOR EACH STATEMENT EXECUTE FUNCTION config_changed();
CREATE TRIGGER config_follows_changed AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON config_follows
    FOR EACH STATEMENT EXECUTE FUNCTION config_changed();
