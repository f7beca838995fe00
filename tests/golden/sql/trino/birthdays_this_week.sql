SELECT
  u.user_id
FROM users AS u
WHERE
  (
    u.first_seen IS NULL
    OR u.first_seen <= CAST('2026-11-15 20:00:00.000000' AS TIMESTAMP)
  )
  AND COALESCE(
    NOT u.birth_date IS NULL
    AND DATE_DIFF(
      'DAY',
      DATE_TRUNC(
        'DAY',
        CAST(AT_TIMEZONE(
          WITH_TIMEZONE((
            CAST('2026-11-15 20:00:00.000000' AS TIMESTAMP)
          ), 'UTC'),
          COALESCE(u.timezone, 'Europe/Prague')
        ) AS DATE)
      ),
      DATE_TRUNC(
        'DAY',
        CASE
          WHEN DATE_FROM_PARTS(
            YEAR(
              CAST(AT_TIMEZONE(
                WITH_TIMEZONE((
                  CAST('2026-11-15 20:00:00.000000' AS TIMESTAMP)
                ), 'UTC'),
                COALESCE(u.timezone, 'Europe/Prague')
              ) AS DATE)
            ),
            MONTH(u.birth_date),
            CASE
              WHEN MONTH(u.birth_date) = 2
              AND DAY(u.birth_date) = 29
              AND NOT (
                (
                  YEAR(
                    CAST(AT_TIMEZONE(
                      WITH_TIMEZONE((
                        CAST('2026-11-15 20:00:00.000000' AS TIMESTAMP)
                      ), 'UTC'),
                      COALESCE(u.timezone, 'Europe/Prague')
                    ) AS DATE)
                  )
                ) % 4 = 0
                AND (
                  (
                    YEAR(
                      CAST(AT_TIMEZONE(
                        WITH_TIMEZONE((
                          CAST('2026-11-15 20:00:00.000000' AS TIMESTAMP)
                        ), 'UTC'),
                        COALESCE(u.timezone, 'Europe/Prague')
                      ) AS DATE)
                    )
                  ) % 100 <> 0
                  OR (
                    YEAR(
                      CAST(AT_TIMEZONE(
                        WITH_TIMEZONE((
                          CAST('2026-11-15 20:00:00.000000' AS TIMESTAMP)
                        ), 'UTC'),
                        COALESCE(u.timezone, 'Europe/Prague')
                      ) AS DATE)
                    )
                  ) % 400 = 0
                )
              )
              THEN 28
              ELSE DAY(u.birth_date)
            END
          ) >= CAST(AT_TIMEZONE(
            WITH_TIMEZONE((
              CAST('2026-11-15 20:00:00.000000' AS TIMESTAMP)
            ), 'UTC'),
            COALESCE(u.timezone, 'Europe/Prague')
          ) AS DATE)
          THEN DATE_FROM_PARTS(
            YEAR(
              CAST(AT_TIMEZONE(
                WITH_TIMEZONE((
                  CAST('2026-11-15 20:00:00.000000' AS TIMESTAMP)
                ), 'UTC'),
                COALESCE(u.timezone, 'Europe/Prague')
              ) AS DATE)
            ),
            MONTH(u.birth_date),
            CASE
              WHEN MONTH(u.birth_date) = 2
              AND DAY(u.birth_date) = 29
              AND NOT (
                (
                  YEAR(
                    CAST(AT_TIMEZONE(
                      WITH_TIMEZONE((
                        CAST('2026-11-15 20:00:00.000000' AS TIMESTAMP)
                      ), 'UTC'),
                      COALESCE(u.timezone, 'Europe/Prague')
                    ) AS DATE)
                  )
                ) % 4 = 0
                AND (
                  (
                    YEAR(
                      CAST(AT_TIMEZONE(
                        WITH_TIMEZONE((
                          CAST('2026-11-15 20:00:00.000000' AS TIMESTAMP)
                        ), 'UTC'),
                        COALESCE(u.timezone, 'Europe/Prague')
                      ) AS DATE)
                    )
                  ) % 100 <> 0
                  OR (
                    YEAR(
                      CAST(AT_TIMEZONE(
                        WITH_TIMEZONE((
                          CAST('2026-11-15 20:00:00.000000' AS TIMESTAMP)
                        ), 'UTC'),
                        COALESCE(u.timezone, 'Europe/Prague')
                      ) AS DATE)
                    )
                  ) % 400 = 0
                )
              )
              THEN 28
              ELSE DAY(u.birth_date)
            END
          )
          ELSE DATE_FROM_PARTS(
            YEAR(
              CAST(AT_TIMEZONE(
                WITH_TIMEZONE((
                  CAST('2026-11-15 20:00:00.000000' AS TIMESTAMP)
                ), 'UTC'),
                COALESCE(u.timezone, 'Europe/Prague')
              ) AS DATE)
            ) + 1,
            MONTH(u.birth_date),
            CASE
              WHEN MONTH(u.birth_date) = 2
              AND DAY(u.birth_date) = 29
              AND NOT (
                (
                  YEAR(
                    CAST(AT_TIMEZONE(
                      WITH_TIMEZONE((
                        CAST('2026-11-15 20:00:00.000000' AS TIMESTAMP)
                      ), 'UTC'),
                      COALESCE(u.timezone, 'Europe/Prague')
                    ) AS DATE)
                  ) + 1
                ) % 4 = 0
                AND (
                  (
                    YEAR(
                      CAST(AT_TIMEZONE(
                        WITH_TIMEZONE((
                          CAST('2026-11-15 20:00:00.000000' AS TIMESTAMP)
                        ), 'UTC'),
                        COALESCE(u.timezone, 'Europe/Prague')
                      ) AS DATE)
                    ) + 1
                  ) % 100 <> 0
                  OR (
                    YEAR(
                      CAST(AT_TIMEZONE(
                        WITH_TIMEZONE((
                          CAST('2026-11-15 20:00:00.000000' AS TIMESTAMP)
                        ), 'UTC'),
                        COALESCE(u.timezone, 'Europe/Prague')
                      ) AS DATE)
                    ) + 1
                  ) % 400 = 0
                )
              )
              THEN 28
              ELSE DAY(u.birth_date)
            END
          )
        END
      )
    ) <= 6,
    FALSE
  );
