-- darkroom bench/limit: a new 16-byte key for every request
local n = 0
local threads = 0

setup = function(thread)
    thread:set("tid", threads)
    threads = threads + 1
end

request = function()
    n = n + 1
    return wrk.format(nil, nil,
        { ["X-Key"] = string.format("%01d%015d", (tid or 0) % 10, n) })
end
