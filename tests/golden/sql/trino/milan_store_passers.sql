SELECT
  u.user_id
FROM users AS u
WHERE
  (
    u.first_seen IS NULL
    OR u.first_seen <= CAST('2026-11-15 20:00:00.000000' AS TIMESTAMP)
  )
  AND u.user_id IN (
    SELECT
      e.user_id
    FROM events AS e
    WHERE
      NOT e.user_id IS NULL
      AND e.ts <= CAST('2026-11-15 20:00:00.000000' AS TIMESTAMP)
      AND e.ts >= CAST('2026-10-16 20:00:00.000000' AS TIMESTAMP)
      AND NOT e.latitude IS NULL
      AND NOT e.longitude IS NULL
      AND NOT (
        e.latitude = 0 AND e.longitude = 0
      )
      AND e.latitude BETWEEN 45.44621359172551 AND 45.48218640827449
      AND e.longitude BETWEEN 9.164354765042413 AND 9.215645234957586
      AND 2 * 6371.0088 * ASIN(
        LEAST(
          1,
          SQRT(
            POWER(SIN(CAST(RADIANS(e.latitude - 45.4642) AS DOUBLE) / 2), 2) + COS(RADIANS(45.4642)) * COS(RADIANS(e.latitude)) * POWER(SIN(CAST(RADIANS(e.longitude - 9.19) AS DOUBLE) / 2), 2)
          )
        )
      ) <= 2.0
    GROUP BY
      e.user_id
    HAVING
      COUNT(
        DISTINCT CAST(AT_TIMEZONE(WITH_TIMEZONE((
          e.ts
        ), 'UTC'), 'Europe/Prague') AS DATE)
      ) >= 1
  );
