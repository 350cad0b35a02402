-- Sessions per SUT and UTC day, with their results and failures (failed or error).
-- Run with: insight sql --file sessions_per_sut_and_day.sql
SELECT
    sut_name,
    session_date,
    count(*) AS sessions,
    sum(tests) AS results,
    sum(failed + error) AS failures
FROM sessions
GROUP BY sut_name, session_date
ORDER BY sut_name, session_date
