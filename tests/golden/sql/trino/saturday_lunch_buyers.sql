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
      x.user_id
    FROM (
      SELECT
        p.user_id,
        p.ts
      FROM purchases AS p
      WHERE
        p.status = 'paid'
        AND NOT p.user_id IS NULL
        AND p.ts <= CAST('2026-11-15 20:00:00.000000' AS TIMESTAMP)
    ) AS x
    JOIN users AS uu
      ON uu.user_id = x.user_id
    GROUP BY
      x.user_id
    HAVING
      COUNT(*) >= 2
      AND CAST(COUNT(*) FILTER(WHERE
        (
          (
            DATE_DIFF(
              'DAY',
              DATE_TRUNC('DAY', CAST('2000-01-03' AS DATE)),
              DATE_TRUNC(
                'DAY',
                CAST(AT_TIMEZONE(WITH_TIMEZONE((
                  x.ts
                ), 'UTC'), COALESCE(uu.timezone, 'Europe/Prague')) AS DATE)
              )
            ) % 7 + 7
          ) % 7 + 1
        ) IN (6)
        AND EXTRACT(HOUR FROM AT_TIMEZONE(WITH_TIMEZONE((
          x.ts
        ), 'UTC'), COALESCE(uu.timezone, 'Europe/Prague'))) >= 11
        AND EXTRACT(HOUR FROM AT_TIMEZONE(WITH_TIMEZONE((
          x.ts
        ), 'UTC'), COALESCE(uu.timezone, 'Europe/Prague'))) < 15) AS DOUBLE) / COUNT(*) >= 0.5
  );
