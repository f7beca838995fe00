SELECT
  u.user_id
FROM users AS u
WHERE
  (
    u.first_seen IS NULL
    OR u.first_seen <= CAST('2026-11-15 20:00:00.000000' AS TIMESTAMP)
  )
  AND COALESCE(
    NOT u.home_lat IS NULL
    AND NOT u.home_lon IS NULL
    AND NOT (
      u.home_lat = 0 AND u.home_lon = 0
    )
    AND u.home_lat BETWEEN 50.04253398081377 AND 50.132466019186225
    AND u.home_lon BETWEEN 14.351217651151028 AND 14.491382348848973
    AND 2 * 6371.0088 * ASIN(
      LEAST(
        1,
        SQRT(
          POWER(SIN(CAST(RADIANS(u.home_lat - 50.0875) AS DOUBLE) / 2), 2) + COS(RADIANS(50.0875)) * COS(RADIANS(u.home_lat)) * POWER(SIN(CAST(RADIANS(u.home_lon - 14.4213) AS DOUBLE) / 2), 2)
        )
      )
    ) <= 5.0,
    FALSE
  );
