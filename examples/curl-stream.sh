#!/bin/sh
curl -N --fail-with-body "${GATEWAY_URL:-http://127.0.0.1:8787}/v1/chat/completions" \
  -H "Authorization: Bearer ${GATEWAY_API_KEY:-local-dev-key}" \
  -H 'Content-Type: application/json' \
  -d '{"model": "gemini-2.5-flash", "stream": true, "messages": [{"role": "user", "content": "Why is the sky blue?"}]}'
