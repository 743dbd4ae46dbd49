-- wrk script: the same deterministic chat completion every time (a cache hit after the first).
wrk.method = "POST"
wrk.body = '{"model": "demo", "temperature": 0, "messages": [{"role": "user", "content": "cached ping"}]}'
wrk.headers["Content-Type"] = "application/json"
wrk.headers["Authorization"] = "Bearer " .. os.getenv("AIGW_BENCH_KEY")
