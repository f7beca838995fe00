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
      s.user_id
    FROM (
      SELECT
        user_id,
        COUNT(*) AS days,
        MAX(day) AS last_day
      FROM (
        SELECT DISTINCT
          p.user_id,
          CAST(FROM_UTC_TIMESTAMP((
            FROM_UTC_TIMESTAMP((
              p.ts
            ), 'UTC')
          ), 'Europe/Prague') AS DATE) AS day
        FROM purchases AS p
        WHERE
          p.status = 'paid'
          AND NOT p.user_id IS NULL
          AND p.ts <= CAST('2026-11-15 20:00:00.000000' AS TIMESTAMP_NTZ)
      ) AS d2
      GROUP BY
        user_id
    ) AS s
    JOIN (
      SELECT
        user_id,
        AVG(gap) AS median_gap
      FROM (
        SELECT
          user_id,
          gap,
          ROW_NUMBER() OVER (PARTITION BY user_id ORDER BY gap NULLS LAST, day NULLS LAST) AS rn,
          COUNT(*) OVER (PARTITION BY user_id) AS n
        FROM (
          SELECT
            user_id,
            day,
            DATEDIFF(DAY, LAG(day) OVER (PARTITION BY user_id ORDER BY day NULLS LAST), day) AS gap
          FROM (
            SELECT DISTINCT
              p.user_id,
              CAST(FROM_UTC_TIMESTAMP((
                FROM_UTC_TIMESTAMP((
                  p.ts
                ), 'UTC')
              ), 'Europe/Prague') AS DATE) AS day
            FROM purchases AS p
            WHERE
              p.status = 'paid'
              AND NOT p.user_id IS NULL
              AND p.ts <= CAST('2026-11-15 20:00:00.000000' AS TIMESTAMP_NTZ)
          ) AS d
        ) AS g
        WHERE
          NOT gap IS NULL
      ) AS k
      WHERE
        2 * rn >= n AND 2 * rn <= n + 2
      GROUP BY
        user_id
    ) AS m
      ON m.user_id = s.user_id
    WHERE
      s.days >= 3
      AND DATEDIFF(DAY, s.last_day, CAST('2026-11-15' AS DATE)) > 1.5 * m.median_gap
  );
