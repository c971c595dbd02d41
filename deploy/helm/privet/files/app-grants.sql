-- Grants for the application role, to run as the schema owner after every
-- `privet db upgrade` (compose: service db-grants; Helm: the migrate hook Job).
--
-- privet_app gets DML on every table EXCEPT the ledger: migration 0002 already gave it
-- SELECT and INSERT there, and nothing more may be granted, so that the append-only audit
-- log is enforced by privilege as well as by triggers. Idempotent. No percent sign anywhere: the
-- Helm Job runs this through a Python driver that would read it as a placeholder.
DO $$
DECLARE
    t record;
BEGIN
    FOR t IN
        SELECT tablename FROM pg_tables
        WHERE schemaname = 'public'
          AND NOT starts_with(tablename, 'ledger_')
          AND tablename <> 'alembic_version'
    LOOP
        EXECUTE 'GRANT SELECT, INSERT, UPDATE, DELETE ON public.'
            || quote_ident(t.tablename) || ' TO privet_app';
    END LOOP;
END
$$;

-- The application reads the schema version (it refuses to run on a stale schema) but
-- never migrates: only privet_owner changes the schema.
GRANT SELECT ON public.alembic_version TO privet_app;

-- Sequences of the non-ledger tables (the ledger's were granted by migration 0002).
DO $$
DECLARE
    s record;
BEGIN
    FOR s IN
        SELECT sequencename FROM pg_sequences
        WHERE schemaname = 'public' AND NOT starts_with(sequencename, 'ledger_')
    LOOP
        EXECUTE 'GRANT USAGE, SELECT ON SEQUENCE public.'
            || quote_ident(s.sequencename) || ' TO privet_app';
    END LOOP;
END
$$;
