-- post.lua -- wrk script for the REST ingest benchmark: POST /api/v1/berichten with a small JSON bericht.
wrk.method = "POST"
wrk.path = "/api/v1/berichten"
wrk.headers["Content-Type"] = "application/json"
wrk.headers["Authorization"] = "Bearer bench-token"
wrk.body = '{"kind":"chat","queue":"support","from":"+31612345678","text":"Hallo, ik heb een vraag over mijn bestelling 12345."}'
