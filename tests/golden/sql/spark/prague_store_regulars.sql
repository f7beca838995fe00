SELECT
  u.user_id
FROM users AS u
WHERE
  (
    u.first_seen IS NULL
    OR u.first_seen <= CAST('2026-11-15 20:00:00.000000' AS TIMESTAMP_NTZ)
  )
  AND u.user_id IN (
    SELECT
      e.user_id
    FROM events AS e
    WHERE
      NOT e.user_id IS NULL
      AND e.ts <= CAST('2026-11-15 20:00:00.000000' AS TIMESTAMP_NTZ)
      AND e.ts >= CAST('2026-10-16 20:00:00.000000' AS TIMESTAMP_NTZ)
      AND NOT e.latitude IS NULL
      AND NOT e.longitude IS NULL
      AND NOT (
        e.latitude = 0 AND e.longitude = 0
      )
      AND e.latitude BETWEEN 50.06951359172551 AND 50.10548640827449
      AND e.longitude BETWEEN 14.393267063314935 AND 14.449332936685066
      AND 2 * 6371.0088 * ASIN(
        LEAST(
          1,
          SQRT(
            POWER(SIN(RADIANS(e.latitude - 50.0875) / 2), 2) + COS(RADIANS(50.0875)) * COS(RADIANS(e.latitude)) * POWER(SIN(RADIANS(e.longitude - 14.4213) / 2), 2)
          )
        )
      ) <= 2.0
    GROUP BY
      e.user_id
    HAVING
      COUNT(
        DISTINCT CAST(FROM_UTC_TIMESTAMP((
          FROM_UTC_TIMESTAMP((
            e.ts
          ), 'UTC')
        ), 'Europe/Prague') AS DATE)
      ) >= 3
  );
