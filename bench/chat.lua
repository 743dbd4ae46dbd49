-- wrk script: POST a small chat completion with the key from the environment.
wrk.method = "POST"
wrk.body = '{"model": "demo", "messages": [{"role": "user", "content": "ping"}]}'
wrk.headers["Content-Type"] = "application/json"
wrk.headers["Authorization"] = "Bearer " .. os.getenv("AIGW_BENCH_KEY")
