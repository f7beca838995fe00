WITH tiers AS (
  SELECT
    u.user_id,
    CASE
      WHEN COALESCE(s.spend, 0) >= 1000
      THEN 'vip'
      WHEN COALESCE(s.spend, 0) >= 400
      THEN 'gold'
      WHEN COALESCE(s.spend, 0) >= 150
      THEN 'silver'
      WHEN COALESCE(s.spend, 0) >= 0
      THEN 'bronze'
    END AS tier,
    CAST(COALESCE(s.spend, 0) AS Nullable(Decimal(18, 3))) AS spend
  FROM users AS u
  LEFT JOIN (
    SELECT
      p.user_id,
      SUM(p.amount_base) AS spend
    FROM purchases AS p
    WHERE
      p.status = 'paid'
      AND NOT (
        p.user_id IS NULL
      )
      AND p.ts <= CAST('2026-11-15 20:00:00.000000' AS Nullable(DateTime))
      AND p.ts >= CAST('2025-11-15 20:00:00.000000' AS Nullable(DateTime))
    GROUP BY
      p.user_id
  ) AS s
    ON s.user_id = u.user_id
  WHERE
    u.first_seen IS NULL
    OR u.first_seen <= CAST('2026-11-15 20:00:00.000000' AS Nullable(DateTime))
)
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
      user_id
    FROM tiers
    WHERE
      tier IN ('bronze')
  );
