SELECT
  u.user_id
FROM users AS u
WHERE
  (
    u.first_seen IS NULL
    OR u.first_seen <= CAST('2026-11-15 20:00:00.000000' AS DATETIME)
  )
  AND COALESCE(
    NOT u.home_lat IS NULL
    AND NOT u.home_lon IS NULL
    AND NOT (
      u.home_lat = 0 AND u.home_lon = 0
    )
    AND u.home_lat BETWEEN 42.65273398081377 AND 42.742666019186224
    AND u.home_lon BETWEEN 23.260716894382295 AND 23.383083105617704
    AND 2 * 6371.0088 * ASIN(
      LEAST(
        1,
        SQRT(
          POWER(SIN(RADIANS(u.home_lat - 42.6977) / 2), 2) + COS(RADIANS(42.6977)) * COS(RADIANS(u.home_lat)) * POWER(SIN(RADIANS(u.home_lon - 23.3219) / 2), 2)
        )
      )
    ) <= 5.0,
    FALSE
  );
