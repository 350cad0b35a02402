-- Failure rate by test over the last 30 days (UTC): runs, failures (failed or error) and their share.
-- Rerun attempts before the last are not runs. Run with: insight sql --file failure_rate_30_days.sql
SELECT
    sut_name,
    nodeid,
    count(*) AS runs,
    count(*) FILTER (WHERE outcome IN ('failed', 'error')) AS failures,
    round(100.0 * count(*) FILTER (WHERE outcome IN ('failed', 'error')) / count(*), 1) AS failure_percent
FROM results
WHERE session_date >= current_date - INTERVAL '30' DAY
  AND outcome <> 'rerun'
GROUP BY sut_name, nodeid
HAVING count(*) FILTER (WHERE outcome IN ('failed', 'error')) > 0
ORDER BY failure_percent DESC, failures DESC, sut_name, nodeid
