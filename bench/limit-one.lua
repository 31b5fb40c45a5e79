-- darkroom bench/limit: the same key every time
wrk.headers["X-Key"] = "k000000000000001"
