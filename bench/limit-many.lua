-- darkroom bench/limit: a random key of 16 bytes out of 100,000 per request
local keys = tonumber(os.getenv("LIMIT_KEYS") or "100000")

setup = function(thread)
    thread:set("seed", math.random(1, 1000000))
end

init = function(args)
    math.randomseed(seed or os.time())
end

request = function()
    return wrk.format(nil, nil,
        { ["X-Key"] = string.format("k%015d", math.random(1, keys)) })
end
