"""Data room: `Dataset`, readers, the embedded MovieLens-100K, splits and candidate files."""

from .amazon import read_amazon
from .atomic import read_atomic, write_atomic
from .benchmark import make_benchmark_split, read_benchmark_split, restrict_users
from .dataset import DISLIKED_RATING, LIKED_RATING, Dataset
from .errors import DataError
from .instruction_data import InstructionData, read_instruction_data
from .movielens import load_movielens_100k, movielens_100k_path
from .readers import read_any, read_table, write_parquet
from .split import (
    CANDIDATE_SETS,
    HISTORY_LEN,
    Split,
    add_candidates,
    leave_one_out,
    load_split,
    make_split,
    save_split,
)

__all__ = [
    "Dataset",
    "DataError",
    "Split",
    "read_atomic",
    "read_benchmark_split",
    "make_benchmark_split",
    "restrict_users",
    "write_atomic",
    "load_movielens_100k",
    "movielens_100k_path",
    "leave_one_out",
    "add_candidates",
    "make_split",
    "save_split",
    "load_split",
    "read_any",
    "read_table",
    "write_parquet",
    "read_amazon",
    "InstructionData",
    "read_instruction_data",
    "CANDIDATE_SETS",
    "HISTORY_LEN",
    "LIKED_RATING",
    "DISLIKED_RATING",
]
