SELECT
  u.user_id
FROM users AS u
WHERE
  (
    u.first_seen IS NULL
    OR u.first_seen <= CAST('2026-11-15 20:00:00.000000' AS DATETIME)
  )
  AND COALESCE(LOWER(CAST(u.os AS STRING)) = LOWER('ios'), FALSE);
