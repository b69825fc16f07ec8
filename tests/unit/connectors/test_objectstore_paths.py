"""What an object path names: S3 URLs, and key globs matched as a shell matches paths."""

from __future__ import annotations

import pytest

from portl.connectors.objectstore.paths import has_glob, is_object_url, key_pattern, split_url


@pytest.mark.parametrize("pattern, key, matches", [
    ("logs/*.csv", "logs/a.csv", True),
    ("logs/*.csv", "logs/2024/a.csv", False),  # * stays within one level
    ("logs/**/*.csv", "logs/a.csv", True),  # ** may be no level at all
    ("logs/**/*.csv", "logs/2024/01/a.csv", True),
    ("logs/**", "logs/2024/01/a.csv", True),
    ("logs/part-?.csv", "logs/part-1.csv", True),
    ("logs/part-?.csv", "logs/part-12.csv", False),
    ("logs/[ab].csv", "logs/b.csv", True),
    ("logs/[!ab].csv", "logs/b.csv", False),
    ("logs/[!ab].csv", "logs/c.csv", True),
    ("logs/a+b(1).csv", "logs/a+b(1).csv", True),  # other characters are themselves
])
def test_a_key_glob_matches_as_a_shell_glob_matches_paths(pattern, key, matches):
    assert bool(key_pattern(pattern).match(key)) is matches


def test_urls_split_into_bucket_and_key():
    assert split_url("s3://my-bucket/a/b.csv") == ("my-bucket", "a/b.csv")
    assert is_object_url("S3://b/k") and not is_object_url("data/s3.csv")
    assert has_glob("s3://b/*.csv") and not has_glob("s3://b/a.csv")
