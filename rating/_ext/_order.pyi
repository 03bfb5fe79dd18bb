import numpy as np

def group_by_meter(meter_index: np.ndarray, ts_us: np.ndarray, value_qty: np.ndarray,
                   meters: int) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]: ...
