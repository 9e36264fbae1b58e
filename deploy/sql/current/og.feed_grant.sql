-- og.feed_grant(role, unit): lets login `role` read unit `unit`'s assignments
-- (feed.assignments), making it a member of onegrid_feed if it is not. Returns false when
-- it already could. The feed checks the login itself (current_user), not the groups it is
-- in, so `role` must be able to log in. The owner's function (onegrid_owner holds
-- onegrid_feed WITH ADMIN OPTION for it).

CREATE OR REPLACE FUNCTION og.feed_grant(p_role text, p_unit text) RETURNS boolean
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, og, pg_temp AS $$
DECLARE
  login boolean;
BEGIN
  SELECT rolcanlogin INTO login FROM pg_roles WHERE rolname = p_role;
  IF login IS NULL THEN
    RAISE EXCEPTION 'role "%" does not exist', p_role USING ERRCODE = 'undefined_object';
  END IF;
  -- The feed checks the login itself (current_user), not the groups it is in.
  IF NOT login THEN
    RAISE EXCEPTION 'role "%" cannot log in', p_role USING ERRCODE = 'invalid_parameter_value',
      HINT = 'Grant units to the login the subscribing system uses.';
  END IF;
  IF NOT EXISTS (SELECT 1 FROM og.handling_unit WHERE code = p_unit) THEN
    RAISE EXCEPTION '"%" is not a registered handling unit', p_unit
      USING ERRCODE = 'foreign_key_violation';
  END IF;
  IF NOT pg_has_role(p_role, 'onegrid_feed', 'MEMBER') THEN
    EXECUTE format('GRANT onegrid_feed TO %I', p_role);
  END IF;
  INSERT INTO og.feed_subscriber (role_name, unit_code) VALUES (p_role, p_unit)
    ON CONFLICT DO NOTHING;
  RETURN FOUND;
END $$;

REVOKE ALL ON FUNCTION og.feed_grant(text, text) FROM PUBLIC;
