module drjosh.dev/zzglob

go 1.22

require github.com/bmatcuk/doublestar/v4 v4.6.1
