SELECT
  u.user_id
FROM users AS u
WHERE
  (
    u.first_seen IS NULL
    OR u.first_seen <= CAST('2026-11-15 20:00:00.000000' AS TIMESTAMPNTZ)
  )
  AND (
    COALESCE(LOWER(CAST(u.gender AS VARCHAR)) = LOWER('female'), FALSE)
    AND COALESCE(
      u.birth_date > CAST('1991-11-15' AS DATE)
      AND u.birth_date <= CAST('2001-11-15' AS DATE),
      FALSE
    )
  );
