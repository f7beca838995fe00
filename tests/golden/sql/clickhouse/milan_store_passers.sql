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
      e.user_id
    FROM events AS e
    WHERE
      NOT (
        e.user_id IS NULL
      )
      AND e.ts <= CAST('2026-11-15 20:00:00.000000' AS Nullable(DateTime))
      AND e.ts >= CAST('2026-10-16 20:00:00.000000' AS Nullable(DateTime))
      AND NOT (
        e.latitude IS NULL
      )
      AND NOT (
        e.longitude IS NULL
      )
      AND NOT (
        e.latitude = 0 AND e.longitude = 0
      )
      AND e.latitude BETWEEN 45.44621359172551 AND 45.48218640827449
      AND e.longitude BETWEEN 9.164354765042413 AND 9.215645234957586
      AND 2 * 6371.0088 * ASIN(
        LEAST(
          1,
          SQRT(
            POWER(SIN(RADIANS(e.latitude - 45.4642) / 2), 2) + COS(RADIANS(45.4642)) * COS(RADIANS(e.latitude)) * POWER(SIN(RADIANS(e.longitude - 9.19) / 2), 2)
          )
        )
      ) <= 2.0
    GROUP BY
      e.user_id
    HAVING
      COUNT(
        DISTINCT CASE
          WHEN e.ts >= CAST('2026-10-25 01:00:00.000000' AS Nullable(DateTime))
          THEN CAST(e.ts + INTERVAL '3600' SECOND AS Nullable(DATE))
          WHEN e.ts >= CAST('2026-03-29 01:00:00.000000' AS Nullable(DateTime))
          THEN CAST(e.ts + INTERVAL '7200' SECOND AS Nullable(DATE))
          WHEN e.ts >= CAST('2025-10-26 01:00:00.000000' AS Nullable(DateTime))
          THEN CAST(e.ts + INTERVAL '3600' SECOND AS Nullable(DATE))
          WHEN e.ts >= CAST('2025-03-30 01:00:00.000000' AS Nullable(DateTime))
          THEN CAST(e.ts + INTERVAL '7200' SECOND AS Nullable(DATE))
          WHEN e.ts >= CAST('2024-10-27 01:00:00.000000' AS Nullable(DateTime))
          THEN CAST(e.ts + INTERVAL '3600' SECOND AS Nullable(DATE))
          WHEN e.ts >= CAST('2024-03-31 01:00:00.000000' AS Nullable(DateTime))
          THEN CAST(e.ts + INTERVAL '7200' SECOND AS Nullable(DATE))
          WHEN e.ts >= CAST('2023-10-29 01:00:00.000000' AS Nullable(DateTime))
          THEN CAST(e.ts + INTERVAL '3600' SECOND AS Nullable(DATE))
          WHEN e.ts >= CAST('2023-03-26 01:00:00.000000' AS Nullable(DateTime))
          THEN CAST(e.ts + INTERVAL '7200' SECOND AS Nullable(DATE))
          WHEN e.ts >= CAST('2022-10-30 01:00:00.000000' AS Nullable(DateTime))
          THEN CAST(e.ts + INTERVAL '3600' SECOND AS Nullable(DATE))
          WHEN e.ts >= CAST('2022-03-27 01:00:00.000000' AS Nullable(DateTime))
          THEN CAST(e.ts + INTERVAL '7200' SECOND AS Nullable(DATE))
          WHEN e.ts >= CAST('2021-10-31 01:00:00.000000' AS Nullable(DateTime))
          THEN CAST(e.ts + INTERVAL '3600' SECOND AS Nullable(DATE))
          WHEN e.ts >= CAST('2021-03-28 01:00:00.000000' AS Nullable(DateTime))
          THEN CAST(e.ts + INTERVAL '7200' SECOND AS Nullable(DATE))
          WHEN e.ts >= CAST('2020-10-25 01:00:00.000000' AS Nullable(DateTime))
          THEN CAST(e.ts + INTERVAL '3600' SECOND AS Nullable(DATE))
          WHEN e.ts >= CAST('2020-03-29 01:00:00.000000' AS Nullable(DateTime))
          THEN CAST(e.ts + INTERVAL '7200' SECOND AS Nullable(DATE))
          WHEN e.ts >= CAST('2019-10-27 01:00:00.000000' AS Nullable(DateTime))
          THEN CAST(e.ts + INTERVAL '3600' SECOND AS Nullable(DATE))
          WHEN e.ts >= CAST('2019-03-31 01:00:00.000000' AS Nullable(DateTime))
          THEN CAST(e.ts + INTERVAL '7200' SECOND AS Nullable(DATE))
          WHEN e.ts >= CAST('2018-10-28 01:00:00.000000' AS Nullable(DateTime))
          THEN CAST(e.ts + INTERVAL '3600' SECOND AS Nullable(DATE))
          WHEN e.ts >= CAST('2018-03-25 01:00:00.000000' AS Nullable(DateTime))
          THEN CAST(e.ts + INTERVAL '7200' SECOND AS Nullable(DATE))
          WHEN e.ts >= CAST('2017-10-29 01:00:00.000000' AS Nullable(DateTime))
          THEN CAST(e.ts + INTERVAL '3600' SECOND AS Nullable(DATE))
          WHEN e.ts >= CAST('2017-03-26 01:00:00.000000' AS Nullable(DateTime))
          THEN CAST(e.ts + INTERVAL '7200' SECOND AS Nullable(DATE))
          WHEN e.ts >= CAST('2016-10-30 01:00:00.000000' AS Nullable(DateTime))
          THEN CAST(e.ts + INTERVAL '3600' SECOND AS Nullable(DATE))
          WHEN e.ts >= CAST('2016-03-27 01:00:00.000000' AS Nullable(DateTime))
          THEN CAST(e.ts + INTERVAL '7200' SECOND AS Nullable(DATE))
          WHEN e.ts >= CAST('2015-10-25 01:00:00.000000' AS Nullable(DateTime))
          THEN CAST(e.ts + INTERVAL '3600' SECOND AS Nullable(DATE))
          WHEN e.ts >= CAST('2015-03-29 01:00:00.000000' AS Nullable(DateTime))
          THEN CAST(e.ts + INTERVAL '7200' SECOND AS Nullable(DATE))
          WHEN e.ts >= CAST('2014-10-26 01:00:00.000000' AS Nullable(DateTime))
          THEN CAST(e.ts + INTERVAL '3600' SECOND AS Nullable(DATE))
          WHEN e.ts >= CAST('2014-03-30 01:00:00.000000' AS Nullable(DateTime))
          THEN CAST(e.ts + INTERVAL '7200' SECOND AS Nullable(DATE))
          WHEN e.ts >= CAST('2013-10-27 01:00:00.000000' AS Nullable(DateTime))
          THEN CAST(e.ts + INTERVAL '3600' SECOND AS Nullable(DATE))
          WHEN e.ts >= CAST('2013-03-31 01:00:00.000000' AS Nullable(DateTime))
          THEN CAST(e.ts + INTERVAL '7200' SECOND AS Nullable(DATE))
          WHEN e.ts >= CAST('2012-10-28 01:00:00.000000' AS Nullable(DateTime))
          THEN CAST(e.ts + INTERVAL '3600' SECOND AS Nullable(DATE))
          WHEN e.ts >= CAST('2012-03-25 01:00:00.000000' AS Nullable(DateTime))
          THEN CAST(e.ts + INTERVAL '7200' SECOND AS Nullable(DATE))
          WHEN e.ts >= CAST('2011-10-30 01:00:00.000000' AS Nullable(DateTime))
          THEN CAST(e.ts + INTERVAL '3600' SECOND AS Nullable(DATE))
          WHEN e.ts >= CAST('2011-03-27 01:00:00.000000' AS Nullable(DateTime))
          THEN CAST(e.ts + INTERVAL '7200' SECOND AS Nullable(DATE))
          WHEN e.ts >= CAST('2010-10-31 01:00:00.000000' AS Nullable(DateTime))
          THEN CAST(e.ts + INTERVAL '3600' SECOND AS Nullable(DATE))
          WHEN e.ts >= CAST('2010-03-28 01:00:00.000000' AS Nullable(DateTime))
          THEN CAST(e.ts + INTERVAL '7200' SECOND AS Nullable(DATE))
          WHEN e.ts >= CAST('2009-10-25 01:00:00.000000' AS Nullable(DateTime))
          THEN CAST(e.ts + INTERVAL '3600' SECOND AS Nullable(DATE))
          WHEN e.ts >= CAST('2009-03-29 01:00:00.000000' AS Nullable(DateTime))
          THEN CAST(e.ts + INTERVAL '7200' SECOND AS Nullable(DATE))
          WHEN e.ts >= CAST('2008-10-26 01:00:00.000000' AS Nullable(DateTime))
          THEN CAST(e.ts + INTERVAL '3600' SECOND AS Nullable(DATE))
          WHEN e.ts >= CAST('2008-03-30 01:00:00.000000' AS Nullable(DateTime))
          THEN CAST(e.ts + INTERVAL '7200' SECOND AS Nullable(DATE))
          WHEN e.ts >= CAST('2007-10-28 01:00:00.000000' AS Nullable(DateTime))
          THEN CAST(e.ts + INTERVAL '3600' SECOND AS Nullable(DATE))
          WHEN e.ts >= CAST('2007-03-25 01:00:00.000000' AS Nullable(DateTime))
          THEN CAST(e.ts + INTERVAL '7200' SECOND AS Nullable(DATE))
          WHEN e.ts >= CAST('2006-10-31 20:00:00.000000' AS Nullable(DateTime))
          THEN CAST(e.ts + INTERVAL '3600' SECOND AS Nullable(DATE))
          ELSE CAST((
            (
              e.ts
            ) AT TIME ZONE 'UTC'
          ) AT TIME ZONE 'Europe/Prague' AS Nullable(DATE))
        END
      ) >= 1
  );
