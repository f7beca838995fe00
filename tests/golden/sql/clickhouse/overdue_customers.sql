SELECT
  u.user_id
FROM users AS u
WHERE
  (
    u.first_seen IS NULL
    OR u.first_seen <= CAST('2026-11-15 20:00:00.000000' AS Nullable(DateTime))
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
          CAST((
            (
              p.ts
            ) AT TIME ZONE 'UTC'
          ) AT TIME ZONE 'Europe/Prague' AS Nullable(DATE)) AS day
        FROM purchases AS p
        WHERE
          p.status = 'paid'
          AND NOT (
            p.user_id IS NULL
          )
          AND p.ts <= CAST('2026-11-15 20:00:00.000000' AS Nullable(DateTime))
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
          ROW_NUMBER() OVER (PARTITION BY user_id ORDER BY gap, day) AS rn,
          COUNT(*) OVER (PARTITION BY user_id) AS n
        FROM (
          SELECT
            user_id,
            day,
            DATE_DIFF(DAY, lag(day) OVER (PARTITION BY user_id ORDER BY day), day) AS gap
          FROM (
            SELECT DISTINCT
              p.user_id,
              CAST((
                (
                  p.ts
                ) AT TIME ZONE 'UTC'
              ) AT TIME ZONE 'Europe/Prague' AS Nullable(DATE)) AS day
            FROM purchases AS p
            WHERE
              p.status = 'paid'
              AND NOT (
                p.user_id IS NULL
              )
              AND p.ts <= CAST('2026-11-15 20:00:00.000000' AS Nullable(DateTime))
          ) AS d
        ) AS g
        WHERE
          NOT (
            gap IS NULL
          )
      ) AS k
      WHERE
        2 * rn >= n AND 2 * rn <= n + 2
      GROUP BY
        user_id
    ) AS m
      ON m.user_id = s.user_id
    WHERE
      s.days >= 3
      AND DATE_DIFF(DAY, s.last_day, CAST('2026-11-15' AS Nullable(DATE))) > 1.5 * m.median_gap
  );
