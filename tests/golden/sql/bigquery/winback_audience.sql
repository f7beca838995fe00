WITH lifecycle AS (
  SELECT
    user_id,
    first_day,
    last_day,
    DATE_DIFF(CAST('2026-11-15' AS DATE), last_day, DAY) AS days_since_last,
    CASE
      WHEN DATE_DIFF(CAST('2026-11-15' AS DATE), first_day, DAY) <= 7
      THEN 'new'
      WHEN DATE_DIFF(CAST('2026-11-15' AS DATE), last_day, DAY) <= 30 AND returned = 1
      THEN 'reactivated'
      WHEN DATE_DIFF(CAST('2026-11-15' AS DATE), last_day, DAY) <= 30
      THEN 'active'
      WHEN DATE_DIFF(CAST('2026-11-15' AS DATE), last_day, DAY) <= 60
      THEN 'at_risk'
      WHEN DATE_DIFF(CAST('2026-11-15' AS DATE), last_day, DAY) <= 90
      THEN 'dormant'
      ELSE 'churned'
    END AS stage
  FROM (
    SELECT
      user_id,
      MIN(day) AS first_day,
      MAX(day) AS last_day,
      MAX(
        CASE
          WHEN DATE_DIFF(CAST('2026-11-15' AS DATE), day, DAY) <= 30 AND gap > 60
          THEN 1
          ELSE 0
        END
      ) AS returned
    FROM (
      SELECT
        user_id,
        day,
        DATE_DIFF(day, LAG(day) OVER (PARTITION BY user_id ORDER BY day NULLS LAST), DAY) AS gap
      FROM (
        SELECT
          e.user_id,
          CASE
            WHEN e.ts >= CAST('2026-10-25 01:00:00.000000' AS DATETIME)
            THEN CAST(e.ts + INTERVAL '3600' SECOND AS DATE)
            WHEN e.ts >= CAST('2026-03-29 01:00:00.000000' AS DATETIME)
            THEN CAST(e.ts + INTERVAL '7200' SECOND AS DATE)
            WHEN e.ts >= CAST('2025-10-26 01:00:00.000000' AS DATETIME)
            THEN CAST(e.ts + INTERVAL '3600' SECOND AS DATE)
            WHEN e.ts >= CAST('2025-03-30 01:00:00.000000' AS DATETIME)
            THEN CAST(e.ts + INTERVAL '7200' SECOND AS DATE)
            WHEN e.ts >= CAST('2024-10-27 01:00:00.000000' AS DATETIME)
            THEN CAST(e.ts + INTERVAL '3600' SECOND AS DATE)
            WHEN e.ts >= CAST('2024-03-31 01:00:00.000000' AS DATETIME)
            THEN CAST(e.ts + INTERVAL '7200' SECOND AS DATE)
            WHEN e.ts >= CAST('2023-10-29 01:00:00.000000' AS DATETIME)
            THEN CAST(e.ts + INTERVAL '3600' SECOND AS DATE)
            WHEN e.ts >= CAST('2023-03-26 01:00:00.000000' AS DATETIME)
            THEN CAST(e.ts + INTERVAL '7200' SECOND AS DATE)
            WHEN e.ts >= CAST('2022-10-30 01:00:00.000000' AS DATETIME)
            THEN CAST(e.ts + INTERVAL '3600' SECOND AS DATE)
            WHEN e.ts >= CAST('2022-03-27 01:00:00.000000' AS DATETIME)
            THEN CAST(e.ts + INTERVAL '7200' SECOND AS DATE)
            WHEN e.ts >= CAST('2021-10-31 01:00:00.000000' AS DATETIME)
            THEN CAST(e.ts + INTERVAL '3600' SECOND AS DATE)
            WHEN e.ts >= CAST('2021-03-28 01:00:00.000000' AS DATETIME)
            THEN CAST(e.ts + INTERVAL '7200' SECOND AS DATE)
            WHEN e.ts >= CAST('2020-10-25 01:00:00.000000' AS DATETIME)
            THEN CAST(e.ts + INTERVAL '3600' SECOND AS DATE)
            WHEN e.ts >= CAST('2020-03-29 01:00:00.000000' AS DATETIME)
            THEN CAST(e.ts + INTERVAL '7200' SECOND AS DATE)
            WHEN e.ts >= CAST('2019-10-27 01:00:00.000000' AS DATETIME)
            THEN CAST(e.ts + INTERVAL '3600' SECOND AS DATE)
            WHEN e.ts >= CAST('2019-03-31 01:00:00.000000' AS DATETIME)
            THEN CAST(e.ts + INTERVAL '7200' SECOND AS DATE)
            WHEN e.ts >= CAST('2018-10-28 01:00:00.000000' AS DATETIME)
            THEN CAST(e.ts + INTERVAL '3600' SECOND AS DATE)
            WHEN e.ts >= CAST('2018-03-25 01:00:00.000000' AS DATETIME)
            THEN CAST(e.ts + INTERVAL '7200' SECOND AS DATE)
            WHEN e.ts >= CAST('2017-10-29 01:00:00.000000' AS DATETIME)
            THEN CAST(e.ts + INTERVAL '3600' SECOND AS DATE)
            WHEN e.ts >= CAST('2017-03-26 01:00:00.000000' AS DATETIME)
            THEN CAST(e.ts + INTERVAL '7200' SECOND AS DATE)
            WHEN e.ts >= CAST('2016-10-30 01:00:00.000000' AS DATETIME)
            THEN CAST(e.ts + INTERVAL '3600' SECOND AS DATE)
            WHEN e.ts >= CAST('2016-03-27 01:00:00.000000' AS DATETIME)
            THEN CAST(e.ts + INTERVAL '7200' SECOND AS DATE)
            WHEN e.ts >= CAST('2015-10-25 01:00:00.000000' AS DATETIME)
            THEN CAST(e.ts + INTERVAL '3600' SECOND AS DATE)
            WHEN e.ts >= CAST('2015-03-29 01:00:00.000000' AS DATETIME)
            THEN CAST(e.ts + INTERVAL '7200' SECOND AS DATE)
            WHEN e.ts >= CAST('2014-10-26 01:00:00.000000' AS DATETIME)
            THEN CAST(e.ts + INTERVAL '3600' SECOND AS DATE)
            WHEN e.ts >= CAST('2014-03-30 01:00:00.000000' AS DATETIME)
            THEN CAST(e.ts + INTERVAL '7200' SECOND AS DATE)
            WHEN e.ts >= CAST('2013-10-27 01:00:00.000000' AS DATETIME)
            THEN CAST(e.ts + INTERVAL '3600' SECOND AS DATE)
            WHEN e.ts >= CAST('2013-03-31 01:00:00.000000' AS DATETIME)
            THEN CAST(e.ts + INTERVAL '7200' SECOND AS DATE)
            WHEN e.ts >= CAST('2012-10-28 01:00:00.000000' AS DATETIME)
            THEN CAST(e.ts + INTERVAL '3600' SECOND AS DATE)
            WHEN e.ts >= CAST('2012-03-25 01:00:00.000000' AS DATETIME)
            THEN CAST(e.ts + INTERVAL '7200' SECOND AS DATE)
            WHEN e.ts >= CAST('2011-10-30 01:00:00.000000' AS DATETIME)
            THEN CAST(e.ts + INTERVAL '3600' SECOND AS DATE)
            WHEN e.ts >= CAST('2011-03-27 01:00:00.000000' AS DATETIME)
            THEN CAST(e.ts + INTERVAL '7200' SECOND AS DATE)
            WHEN e.ts >= CAST('2010-10-31 01:00:00.000000' AS DATETIME)
            THEN CAST(e.ts + INTERVAL '3600' SECOND AS DATE)
            WHEN e.ts >= CAST('2010-03-28 01:00:00.000000' AS DATETIME)
            THEN CAST(e.ts + INTERVAL '7200' SECOND AS DATE)
            WHEN e.ts >= CAST('2009-10-25 01:00:00.000000' AS DATETIME)
            THEN CAST(e.ts + INTERVAL '3600' SECOND AS DATE)
            WHEN e.ts >= CAST('2009-03-29 01:00:00.000000' AS DATETIME)
            THEN CAST(e.ts + INTERVAL '7200' SECOND AS DATE)
            WHEN e.ts >= CAST('2008-10-26 01:00:00.000000' AS DATETIME)
            THEN CAST(e.ts + INTERVAL '3600' SECOND AS DATE)
            WHEN e.ts >= CAST('2008-03-30 01:00:00.000000' AS DATETIME)
            THEN CAST(e.ts + INTERVAL '7200' SECOND AS DATE)
            WHEN e.ts >= CAST('2007-10-28 01:00:00.000000' AS DATETIME)
            THEN CAST(e.ts + INTERVAL '3600' SECOND AS DATE)
            WHEN e.ts >= CAST('2007-03-25 01:00:00.000000' AS DATETIME)
            THEN CAST(e.ts + INTERVAL '7200' SECOND AS DATE)
            WHEN e.ts >= CAST('2006-10-31 20:00:00.000000' AS DATETIME)
            THEN CAST(e.ts + INTERVAL '3600' SECOND AS DATE)
            ELSE CAST(DATETIME(TIMESTAMP((
              e.ts
            ), 'UTC'), 'Europe/Prague') AS DATE)
          END AS day
        FROM events AS e
        WHERE
          NOT e.user_id IS NULL
          AND e.ts <= CAST('2026-11-15 20:00:00.000000' AS DATETIME)
          AND e.name IN ('session_start')
        UNION DISTINCT
        SELECT
          p.user_id,
          CASE
            WHEN p.ts >= CAST('2026-10-25 01:00:00.000000' AS DATETIME)
            THEN CAST(p.ts + INTERVAL '3600' SECOND AS DATE)
            WHEN p.ts >= CAST('2026-03-29 01:00:00.000000' AS DATETIME)
            THEN CAST(p.ts + INTERVAL '7200' SECOND AS DATE)
            WHEN p.ts >= CAST('2025-10-26 01:00:00.000000' AS DATETIME)
            THEN CAST(p.ts + INTERVAL '3600' SECOND AS DATE)
            WHEN p.ts >= CAST('2025-03-30 01:00:00.000000' AS DATETIME)
            THEN CAST(p.ts + INTERVAL '7200' SECOND AS DATE)
            WHEN p.ts >= CAST('2024-10-27 01:00:00.000000' AS DATETIME)
            THEN CAST(p.ts + INTERVAL '3600' SECOND AS DATE)
            WHEN p.ts >= CAST('2024-03-31 01:00:00.000000' AS DATETIME)
            THEN CAST(p.ts + INTERVAL '7200' SECOND AS DATE)
            WHEN p.ts >= CAST('2023-10-29 01:00:00.000000' AS DATETIME)
            THEN CAST(p.ts + INTERVAL '3600' SECOND AS DATE)
            WHEN p.ts >= CAST('2023-03-26 01:00:00.000000' AS DATETIME)
            THEN CAST(p.ts + INTERVAL '7200' SECOND AS DATE)
            WHEN p.ts >= CAST('2022-10-30 01:00:00.000000' AS DATETIME)
            THEN CAST(p.ts + INTERVAL '3600' SECOND AS DATE)
            WHEN p.ts >= CAST('2022-03-27 01:00:00.000000' AS DATETIME)
            THEN CAST(p.ts + INTERVAL '7200' SECOND AS DATE)
            WHEN p.ts >= CAST('2021-10-31 01:00:00.000000' AS DATETIME)
            THEN CAST(p.ts + INTERVAL '3600' SECOND AS DATE)
            WHEN p.ts >= CAST('2021-03-28 01:00:00.000000' AS DATETIME)
            THEN CAST(p.ts + INTERVAL '7200' SECOND AS DATE)
            WHEN p.ts >= CAST('2020-10-25 01:00:00.000000' AS DATETIME)
            THEN CAST(p.ts + INTERVAL '3600' SECOND AS DATE)
            WHEN p.ts >= CAST('2020-03-29 01:00:00.000000' AS DATETIME)
            THEN CAST(p.ts + INTERVAL '7200' SECOND AS DATE)
            WHEN p.ts >= CAST('2019-10-27 01:00:00.000000' AS DATETIME)
            THEN CAST(p.ts + INTERVAL '3600' SECOND AS DATE)
            WHEN p.ts >= CAST('2019-03-31 01:00:00.000000' AS DATETIME)
            THEN CAST(p.ts + INTERVAL '7200' SECOND AS DATE)
            WHEN p.ts >= CAST('2018-10-28 01:00:00.000000' AS DATETIME)
            THEN CAST(p.ts + INTERVAL '3600' SECOND AS DATE)
            WHEN p.ts >= CAST('2018-03-25 01:00:00.000000' AS DATETIME)
            THEN CAST(p.ts + INTERVAL '7200' SECOND AS DATE)
            WHEN p.ts >= CAST('2017-10-29 01:00:00.000000' AS DATETIME)
            THEN CAST(p.ts + INTERVAL '3600' SECOND AS DATE)
            WHEN p.ts >= CAST('2017-03-26 01:00:00.000000' AS DATETIME)
            THEN CAST(p.ts + INTERVAL '7200' SECOND AS DATE)
            WHEN p.ts >= CAST('2016-10-30 01:00:00.000000' AS DATETIME)
            THEN CAST(p.ts + INTERVAL '3600' SECOND AS DATE)
            WHEN p.ts >= CAST('2016-03-27 01:00:00.000000' AS DATETIME)
            THEN CAST(p.ts + INTERVAL '7200' SECOND AS DATE)
            WHEN p.ts >= CAST('2015-10-25 01:00:00.000000' AS DATETIME)
            THEN CAST(p.ts + INTERVAL '3600' SECOND AS DATE)
            WHEN p.ts >= CAST('2015-03-29 01:00:00.000000' AS DATETIME)
            THEN CAST(p.ts + INTERVAL '7200' SECOND AS DATE)
            WHEN p.ts >= CAST('2014-10-26 01:00:00.000000' AS DATETIME)
            THEN CAST(p.ts + INTERVAL '3600' SECOND AS DATE)
            WHEN p.ts >= CAST('2014-03-30 01:00:00.000000' AS DATETIME)
            THEN CAST(p.ts + INTERVAL '7200' SECOND AS DATE)
            WHEN p.ts >= CAST('2013-10-27 01:00:00.000000' AS DATETIME)
            THEN CAST(p.ts + INTERVAL '3600' SECOND AS DATE)
            WHEN p.ts >= CAST('2013-03-31 01:00:00.000000' AS DATETIME)
            THEN CAST(p.ts + INTERVAL '7200' SECOND AS DATE)
            WHEN p.ts >= CAST('2012-10-28 01:00:00.000000' AS DATETIME)
            THEN CAST(p.ts + INTERVAL '3600' SECOND AS DATE)
            WHEN p.ts >= CAST('2012-03-25 01:00:00.000000' AS DATETIME)
            THEN CAST(p.ts + INTERVAL '7200' SECOND AS DATE)
            WHEN p.ts >= CAST('2011-10-30 01:00:00.000000' AS DATETIME)
            THEN CAST(p.ts + INTERVAL '3600' SECOND AS DATE)
            WHEN p.ts >= CAST('2011-03-27 01:00:00.000000' AS DATETIME)
            THEN CAST(p.ts + INTERVAL '7200' SECOND AS DATE)
            WHEN p.ts >= CAST('2010-10-31 01:00:00.000000' AS DATETIME)
            THEN CAST(p.ts + INTERVAL '3600' SECOND AS DATE)
            WHEN p.ts >= CAST('2010-03-28 01:00:00.000000' AS DATETIME)
            THEN CAST(p.ts + INTERVAL '7200' SECOND AS DATE)
            WHEN p.ts >= CAST('2009-10-25 01:00:00.000000' AS DATETIME)
            THEN CAST(p.ts + INTERVAL '3600' SECOND AS DATE)
            WHEN p.ts >= CAST('2009-03-29 01:00:00.000000' AS DATETIME)
            THEN CAST(p.ts + INTERVAL '7200' SECOND AS DATE)
            WHEN p.ts >= CAST('2008-10-26 01:00:00.000000' AS DATETIME)
            THEN CAST(p.ts + INTERVAL '3600' SECOND AS DATE)
            WHEN p.ts >= CAST('2008-03-30 01:00:00.000000' AS DATETIME)
            THEN CAST(p.ts + INTERVAL '7200' SECOND AS DATE)
            WHEN p.ts >= CAST('2007-10-28 01:00:00.000000' AS DATETIME)
            THEN CAST(p.ts + INTERVAL '3600' SECOND AS DATE)
            WHEN p.ts >= CAST('2007-03-25 01:00:00.000000' AS DATETIME)
            THEN CAST(p.ts + INTERVAL '7200' SECOND AS DATE)
            WHEN p.ts >= CAST('2006-10-31 20:00:00.000000' AS DATETIME)
            THEN CAST(p.ts + INTERVAL '3600' SECOND AS DATE)
            ELSE CAST(DATETIME(TIMESTAMP((
              p.ts
            ), 'UTC'), 'Europe/Prague') AS DATE)
          END AS day
        FROM purchases AS p
        WHERE
          NOT p.user_id IS NULL
          AND p.status = 'paid'
          AND p.ts <= CAST('2026-11-15 20:00:00.000000' AS DATETIME)
      ) AS d
    ) AS g
    GROUP BY
      user_id
  ) AS x
)
SELECT
  u.user_id
FROM users AS u
WHERE
  (
    u.first_seen IS NULL
    OR u.first_seen <= CAST('2026-11-15 20:00:00.000000' AS DATETIME)
  )
  AND (
    u.user_id IN (
      SELECT
        user_id
      FROM lifecycle
      WHERE
        stage IN ('dormant', 'churned')
    )
    AND u.user_id IN (
      SELECT
        p.user_id
      FROM purchases AS p
      WHERE
        p.status = 'paid'
        AND NOT p.user_id IS NULL
        AND p.ts <= CAST('2026-11-15 20:00:00.000000' AS DATETIME)
      GROUP BY
        p.user_id
      HAVING
        COUNT(*) >= 1
    )
    AND (
      NOT u.email IS NULL
      AND NOT TO_HEX(SHA256('email:' || LOWER(TRIM(u.email)))) IN (
        SELECT
          ia.address_hash
        FROM invalid_addresses AS ia
        WHERE
          ia.channel = 'email'
          AND ia.invalid_at <= CAST('2026-11-15 20:00:00.000000' AS DATETIME)
      )
      AND u.user_id IN (
        SELECT
          user_id
        FROM (
          SELECT
            c.user_id,
            c.granted,
            ROW_NUMBER() OVER (
              PARTITION BY c.user_id
              ORDER BY c.ts DESC, c.granted ASC NULLS LAST, c.source NULLS LAST
            ) AS rn
          FROM consents AS c
          WHERE
            c.channel = 'email'
            AND c.purpose = 'marketing'
            AND c.ts <= CAST('2026-11-15 20:00:00.000000' AS DATETIME)
        ) AS x
        WHERE
          rn = 1 AND granted
      )
    )
  );
