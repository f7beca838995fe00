WITH rfm AS (
  SELECT
    user_id,
    recency_days,
    frequency,
    monetary,
    r,
    f,
    m,
    CAST(100 * r + 10 * f + m AS VARCHAR) AS cell,
    CASE
      WHEN r = 1 AND f = 1
      THEN 'hibernating'
      WHEN r = 1 AND f = 2
      THEN 'hibernating'
      WHEN r = 1 AND f = 3
      THEN 'at_risk'
      WHEN r = 1 AND f = 4
      THEN 'at_risk'
      WHEN r = 1 AND f = 5
      THEN 'cant_lose_them'
      WHEN r = 2 AND f = 1
      THEN 'hibernating'
      WHEN r = 2 AND f = 2
      THEN 'hibernating'
      WHEN r = 2 AND f = 3
      THEN 'at_risk'
      WHEN r = 2 AND f = 4
      THEN 'at_risk'
      WHEN r = 2 AND f = 5
      THEN 'cant_lose_them'
      WHEN r = 3 AND f = 1
      THEN 'about_to_sleep'
      WHEN r = 3 AND f = 2
      THEN 'about_to_sleep'
      WHEN r = 3 AND f = 3
      THEN 'need_attention'
      WHEN r = 3 AND f = 4
      THEN 'loyal_customers'
      WHEN r = 3 AND f = 5
      THEN 'loyal_customers'
      WHEN r = 4 AND f = 1
      THEN 'promising'
      WHEN r = 4 AND f = 2
      THEN 'potential_loyalists'
      WHEN r = 4 AND f = 3
      THEN 'potential_loyalists'
      WHEN r = 4 AND f = 4
      THEN 'loyal_customers'
      WHEN r = 4 AND f = 5
      THEN 'loyal_customers'
      WHEN r = 5 AND f = 1
      THEN 'new_customers'
      WHEN r = 5 AND f = 2
      THEN 'potential_loyalists'
      WHEN r = 5 AND f = 3
      THEN 'potential_loyalists'
      WHEN r = 5 AND f = 4
      THEN 'champions'
      WHEN r = 5 AND f = 5
      THEN 'champions'
    END AS segment
  FROM (
    SELECT
      user_id,
      recency_days,
      frequency,
      monetary,
      NTILE(5) OVER (ORDER BY recency_days DESC NULLS LAST, MD5(user_id), user_id) AS r,
      NTILE(5) OVER (ORDER BY frequency ASC, MD5(user_id), user_id) AS f,
      NTILE(5) OVER (ORDER BY monetary ASC, MD5(user_id), user_id) AS m
    FROM (
      SELECT
        p.user_id,
        DATEDIFF(
          DAY,
          MAX(CAST(CONVERT_TIMEZONE('UTC', 'Europe/Prague', (
            p.ts
          )) AS DATE)),
          CAST('2026-11-15' AS DATE)
        ) AS recency_days,
        COUNT(DISTINCT CAST(CONVERT_TIMEZONE('UTC', 'Europe/Prague', (
          p.ts
        )) AS DATE)) AS frequency,
        CAST(SUM(p.amount_base) AS DECIMAL(18, 3)) AS monetary
      FROM purchases AS p
      WHERE
        p.status = 'paid'
        AND NOT p.user_id IS NULL
        AND p.ts <= CAST('2026-11-15 20:00:00.000000' AS TIMESTAMPNTZ)
        AND p.ts >= CAST('2025-11-15 20:00:00.000000' AS TIMESTAMPNTZ)
      GROUP BY
        p.user_id
    ) AS b
  ) AS s
)
SELECT
  u.user_id
FROM users AS u
WHERE
  (
    u.first_seen IS NULL
    OR u.first_seen <= CAST('2026-11-15 20:00:00.000000' AS TIMESTAMPNTZ)
  )
  AND u.user_id IN (
    SELECT
      user_id
    FROM rfm
    WHERE
      segment IN ('champions')
  );
