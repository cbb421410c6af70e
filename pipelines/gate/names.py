"""Check names, declared once. A check is identified by (table, name); names are valid Dagster check names.

Where one rule applies to several tables (keys, counts, references) the name is the same in each table,
so a Dagster asset check per table can use it as is.
"""

from __future__ import annotations

KEY_PRESENT = "key_present"
KEY_UNIQUE = "key_unique"
COUNTS_NON_NEGATIVE = "counts_non_negative"
CAST_LE_REGISTERED = "cast_le_registered"
VALID_PLUS_INVALID_EQ_CAST = "valid_plus_invalid_eq_cast"
VOTES_SUM_EQ_VALID = "votes_sum_eq_valid"
TURNOUT_IN_RANGE = "turnout_in_range"
REPORTED_MATCHES_COMPUTED = "reported_matches_computed"

ELECTION_ID_FORMAT = "election_id_format"
DIVISION_ID_FORMAT = "division_id_format"

ELECTION_RESOLVES = "election_id_resolves"
DIVISION_RESOLVES = "division_id_resolves"
PARENT_RESOLVES = "parent_id_resolves"
MUNICIPALITY_RESOLVES = "municipality_id_resolves"
STATION_RESOLVES = "station_id_resolves"
PARTY_RESOLVES = "party_id_resolves"
CANDIDATE_RESOLVES = "candidate_id_resolves"
ARTICLE_RESOLVES = "article_id_resolves"

RECORD_TYPE_IN_VOCABULARY = "record_type_in_vocabulary"
STATUS_IN_VOCABULARY = "status_in_vocabulary"
SOURCE_KIND_IN_VOCABULARY = "source_kind_in_vocabulary"
KIND_IN_VOCABULARY = "kind_in_vocabulary"
GENDER_IN_VOCABULARY = "gender_in_vocabulary"
AGE_BAND_IN_VOCABULARY = "age_band_in_vocabulary"
EDUCATION_IN_VOCABULARY = "education_in_vocabulary"
CATEGORY_IN_VOCABULARY = "category_in_vocabulary"
REPORTER_KIND_IN_VOCABULARY = "reporter_kind_in_vocabulary"
METRIC_IN_VOCABULARY = "metric_in_vocabulary"
QUALIFIER_IN_VOCABULARY = "qualifier_in_vocabulary"

CONTEST_ID_FORMAT = "contest_id_format"
CONTEST_RESOLVES = "contest_id_resolves"
DISTRICT_RESOLVES = "district_id_resolves"
SELECTION_DECLARED = "selection_declared"
METHODS_SUM_EQ_VOTES = "methods_sum_eq_votes"
VOTES_LE_CAST_TIMES_ALLOWED = "votes_le_cast_times_allowed"
REPORTING_LE_EXPECTED = "stations_reporting_le_expected"
