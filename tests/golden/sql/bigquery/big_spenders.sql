SELECT
  u.user_id
FROM users AS u
WHERE
  (
    u.first_seen IS NULL
    OR u.first_seen <= CAST('2026-11-15 20:00:00.000000' AS DATETIME)
  )
  AND u.user_id IN (
    SELECT
      p.user_id
    FROM purchases AS p
    WHERE
      p.status = 'paid'
      AND NOT p.user_id IS NULL
      AND p.ts <= CAST('2026-11-15 20:00:00.000000' AS DATETIME)
      AND p.ts >= CAST('2026-08-17 20:00:00.000000' AS DATETIME)
    GROUP BY
      p.user_id
    HAVING
      SUM(p.amount_base) >= 300
  );
