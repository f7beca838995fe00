SELECT
  u.user_id
FROM users AS u
WHERE
  (
    u.first_seen IS NULL
    OR u.first_seen <= CAST('2026-11-15 20:00:00.000000' AS TIMESTAMPNTZ)
  )
  AND (
    u.user_id IN (
      SELECT
        e.user_id
      FROM events AS e
      WHERE
        e.name = 'add_to_cart'
        AND NOT e.user_id IS NULL
        AND TRUE
        AND e.ts <= CAST('2026-11-15 20:00:00.000000' AS TIMESTAMPNTZ)
        AND e.ts >= CAST('2026-11-12 20:00:00.000000' AS TIMESTAMPNTZ)
      GROUP BY
        e.user_id
    )
    AND (
      NOT u.user_id IN (
        SELECT
          p.user_id
        FROM purchases AS p
        WHERE
          p.status = 'paid'
          AND NOT p.user_id IS NULL
          AND p.ts <= CAST('2026-11-15 20:00:00.000000' AS TIMESTAMPNTZ)
          AND p.ts >= CAST('2026-11-12 20:00:00.000000' AS TIMESTAMPNTZ)
        GROUP BY
          p.user_id
        HAVING
          COUNT(*) >= 1
      )
    )
  );
