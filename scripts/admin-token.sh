#!/usr/bin/env bash
# admin-token.sh FILE: print the operator token kept in FILE, creating it on
# first use. FILE holds exactly the token hubd accepts as HUB_ADMIN_TOKEN
# (43 URL-safe base64 characters, no newline), so it can be copied as it is.
# A file in the older form (standard base64 with '+', '/' and '=', converted
# on each use) is rewritten once in the accepted form: the same token.
set -euo pipefail
file="${1:?usage: admin-token.sh FILE}"

urlsafe() { tr '+/' '-_' | tr -d '=\n'; }

if [ ! -s "$file" ]; then
  (umask 077; head -c 32 /dev/urandom | base64 | urlsafe > "$file")
elif grep -q '[+/=]' "$file"; then
  (umask 077; urlsafe < "$file" > "$file.new")
  mv "$file.new" "$file"
fi
cat "$file"
