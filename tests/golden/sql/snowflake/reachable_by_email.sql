SELECT
  u.user_id
FROM users AS u
WHERE
  (
    u.first_seen IS NULL
    OR u.first_seen <= CAST('2026-11-15 20:00:00.000000' AS TIMESTAMPNTZ)
  )
  AND (
    NOT u.email IS NULL
    AND NOT SHA2('email:' || LOWER(TRIM(u.email)), 256) IN (
      SELECT
        ia.address_hash
      FROM invalid_addresses AS ia
      WHERE
        ia.channel = 'email'
        AND ia.invalid_at <= CAST('2026-11-15 20:00:00.000000' AS TIMESTAMPNTZ)
    )
    AND u.user_id IN (
      SELECT
        user_id
      FROM (
        SELECT
          c.user_id,
          c.granted,
          ROW_NUMBER() OVER (PARTITION BY c.user_id ORDER BY c.ts DESC NULLS LAST, c.granted ASC, c.source) AS rn
        FROM consents AS c
        WHERE
          c.channel = 'email'
          AND c.purpose = 'marketing'
          AND c.ts <= CAST('2026-11-15 20:00:00.000000' AS TIMESTAMPNTZ)
      ) AS x
      WHERE
        rn = 1 AND granted
    )
  );
