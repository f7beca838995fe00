SELECT
  u.user_id
FROM users AS u
WHERE
  (
    u.first_seen IS NULL
    OR u.first_seen <= CAST('2026-11-15 20:00:00.000000' AS Nullable(DateTime))
  )
  AND COALESCE(LOWER(CAST(u.os AS Nullable(String))) = LOWER('ios'), FALSE);
