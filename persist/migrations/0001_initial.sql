-- 0001_initial: the record of the journal. Every column is described in
-- persist/SCHEMA.md. Logins, tickets, positions, magic numbers and
-- protocol seqs are unsigned 64-bit in the protocol, so they are
-- numeric(20,0) here (bigint stops at 2^63-1); journal seqs are bigint.

-- One row per journaled master event.
CREATE TABLE master_events (
    master_login   numeric(20,0)    NOT NULL,
    seq            numeric(20,0)    NOT NULL,
    journal_seq    bigint           NOT NULL,
    kind           text             NOT NULL CHECK (kind IN ('open', 'modify', 'close', 'pending', 'cancel')),
    pos            numeric(20,0)    NOT NULL,
    ticket         numeric(20,0)    NOT NULL,
    symbol         text             NOT NULL,
    side           text             CHECK (side IN ('buy', 'sell', 'buy_limit', 'sell_limit', 'buy_stop', 'sell_stop')),
    volume         double precision NOT NULL,
    price          double precision NOT NULL,
    sl             double precision NOT NULL,
    tp             double precision NOT NULL,
    magic          numeric(20,0)    NOT NULL,
    comment        text             NOT NULL,
    remaining      double precision,
    terminal_time  timestamptz,
    received_at    timestamptz      NOT NULL,
    PRIMARY KEY (master_login, seq)
);
CREATE INDEX master_events_login_time ON master_events (master_login, received_at);
CREATE INDEX master_events_position ON master_events (master_login, pos);

-- One row per copy issued to a follower.
CREATE TABLE copies (
    slave_login    numeric(20,0)    NOT NULL,
    seq            numeric(20,0)    NOT NULL,
    journal_seq    bigint           NOT NULL,
    copy_id        text             NOT NULL,
    master_login   numeric(20,0)    NOT NULL,
    master_pos     numeric(20,0)    NOT NULL,
    master_seq     numeric(20,0),
    action         text             NOT NULL CHECK (action IN ('open', 'modify', 'close', 'pending', 'cancel')),
    symbol         text             NOT NULL,
    side           text             NOT NULL,
    volume         double precision NOT NULL,
    price          double precision NOT NULL,
    max_dev        double precision NOT NULL,
    sl             double precision NOT NULL,
    tp             double precision NOT NULL,
    magic          numeric(20,0)    NOT NULL,
    comment        text             NOT NULL,
    expires_at     timestamptz,
    issued_at      timestamptz,
    PRIMARY KEY (slave_login, seq)
);
CREATE INDEX copies_login_time ON copies (slave_login, issued_at);
CREATE INDEX copies_master_position ON copies (master_login, master_pos);
CREATE INDEX copies_copy_id ON copies (copy_id);

-- One row per result a follower sent (the first, when one came twice).
CREATE TABLE copy_results (
    slave_login    numeric(20,0)    NOT NULL,
    seq            numeric(20,0)    NOT NULL,
    journal_seq    bigint           NOT NULL,
    status         text             NOT NULL CHECK (status IN ('filled', 'rejected', 'skipped')),
    ticket         numeric(20,0)    NOT NULL,
    price          double precision NOT NULL,
    volume         double precision NOT NULL,
    error          bigint           NOT NULL,
    msg            text             NOT NULL,
    exec_ms        numeric(20,0)    NOT NULL,
    received_at    timestamptz      NOT NULL,
    PRIMARY KEY (slave_login, seq)
);
CREATE INDEX copy_results_login_time ON copy_results (slave_login, received_at);

-- One row per follower that got no copy of a master event, with the reason.
CREATE TABLE skips (
    journal_seq    bigint           NOT NULL,
    entry          integer          NOT NULL,
    slave_login    numeric(20,0)    NOT NULL,
    master_login   numeric(20,0)    NOT NULL,
    master_seq     numeric(20,0),
    master_pos     numeric(20,0)    NOT NULL,
    reason         text             NOT NULL,
    skipped_at     timestamptz,
    PRIMARY KEY (journal_seq, entry)
);
CREATE INDEX skips_login_time ON skips (slave_login, skipped_at);
CREATE INDEX skips_master_position ON skips (master_login, master_pos);

-- One row per EA session: its connect, and its disconnect once it ends.
CREATE TABLE sessions (
    session_id      text            PRIMARY KEY,
    login           numeric(20,0)   NOT NULL,
    role            text            NOT NULL CHECK (role IN ('master', 'slave')),
    remote_address  text            NOT NULL,
    connected_at    timestamptz     NOT NULL,
    disconnected_at timestamptz,
    close_code      integer,
    close_reason    text
);
CREATE INDEX sessions_login_time ON sessions (login, connected_at);
CREATE INDEX sessions_open ON sessions (connected_at) WHERE disconnected_at IS NULL;

-- The symbols each follower's terminal reported (state / symbols), latest.
CREATE TABLE slave_symbols (
    slave_login    numeric(20,0)    NOT NULL,
    name           text             NOT NULL,
    digits         integer          NOT NULL,
    volume_min     double precision NOT NULL,
    volume_max     double precision NOT NULL,
    volume_step    double precision NOT NULL,
    contract       double precision NOT NULL,
    updated_at     timestamptz      NOT NULL,
    PRIMARY KEY (slave_login, name)
);

-- Append-only record of administrative actions (issue 14 writes it).
CREATE TABLE audit_log (
    id             bigserial        PRIMARY KEY,
    at             timestamptz      NOT NULL DEFAULT now(),
    actor          text             NOT NULL,
    action         text             NOT NULL,
    subject        text             NOT NULL,
    before         jsonb,
    after          jsonb
);
CREATE INDEX audit_log_subject_time ON audit_log (subject, at);
CREATE FUNCTION audit_log_is_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'audit_log is append-only: % is not allowed', TG_OP;
END;
$$;
CREATE TRIGGER audit_log_append_only BEFORE UPDATE OR DELETE OR TRUNCATE ON audit_log
    FOR EACH STATEMENT EXECUTE FUNCTION audit_log_is_append_only();

-- How far the journal has been persisted: one row, written in the same
-- transaction as the rows it covers.
CREATE TABLE persist_progress (
    id             integer          PRIMARY KEY CHECK (id = 1),
    journal_seq    bigint           NOT NULL,
    updated_at     timestamptz      NOT NULL
);
INSERT INTO persist_progress (id, journal_seq, updated_at) VALUES (1, 0, now());

-- Journal records that were released before the persister read them (it
-- was behind so long the journal had to let them go): never silent.
CREATE TABLE persist_gaps (
    from_journal_seq bigint         NOT NULL,
    to_journal_seq   bigint         NOT NULL,
    noticed_at       timestamptz    NOT NULL,
    reason           text           NOT NULL,
    PRIMARY KEY (from_journal_seq)
);

-- Rows Postgres refused, with its reason, instead of blocking the stream.
CREATE TABLE dead_letters (
    id             bigserial        PRIMARY KEY,
    journal_seq    bigint           NOT NULL,
    target_table   text             NOT NULL,
    reason         text             NOT NULL,
    row_json       text             NOT NULL,
    at             timestamptz      NOT NULL DEFAULT now()
);
CREATE INDEX dead_letters_journal_seq ON dead_letters (journal_seq);

-- Each copy with its result and the master event behind it: slippage in
-- points (positive: worse for the follower than the master's price) and
-- the latencies an operator asks about.
CREATE VIEW copy_outcomes AS
SELECT
    c.slave_login,
    c.seq,
    c.copy_id,
    c.master_login,
    c.master_pos,
    c.master_seq,
    c.action,
    c.symbol,
    c.side,
    c.volume                                   AS copy_volume,
    c.price                                    AS master_price,
    r.status,
    r.ticket,
    r.price                                    AS fill_price,
    r.volume                                   AS fill_volume,
    r.error,
    r.msg,
    r.exec_ms,
    e.received_at                              AS master_received_at,
    c.issued_at,
    r.received_at                              AS result_received_at,
    CASE
        WHEN r.status = 'filled' AND c.action = 'open' AND r.price > 0 AND c.price > 0 AND s.digits IS NOT NULL THEN
            round(((CASE WHEN c.side LIKE 'buy%' THEN r.price - c.price ELSE c.price - r.price END)
                   * power(10, s.digits))::numeric, 1)
    END                                        AS slippage_points,
    extract(epoch FROM (r.received_at - e.received_at)) * 1000 AS end_to_end_ms,
    extract(epoch FROM (c.issued_at - e.received_at)) * 1000   AS bridge_ms
FROM copies c
LEFT JOIN copy_results r ON r.slave_login = c.slave_login AND r.seq = c.seq
LEFT JOIN master_events e ON e.master_login = c.master_login AND e.seq = c.master_seq
LEFT JOIN slave_symbols s ON s.slave_login = c.slave_login AND s.name = c.symbol;
