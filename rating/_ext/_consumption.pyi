import numpy as np
import numpy.typing as npt

def accumulate(
    meter_index: npt.NDArray[np.int32],
    ts_us: npt.NDArray[np.int64],
    value_qty: npt.NDArray[np.int64],
    states: np.ndarray,
    bounds_us: npt.NDArray[np.int64],
    slots: npt.NDArray[np.int32],
    bucket_qty: npt.NDArray[np.int64],
    anomaly_row: npt.NDArray[np.int64],
    anomaly_code: npt.NDArray[np.uint8],
    anomaly_delta: npt.NDArray[np.int64],
) -> tuple[int, int, int]: ...

def survey(
    meter_index: npt.NDArray[np.int32], ts_us: npt.NDArray[np.int64], present: npt.NDArray[np.uint8]
) -> tuple[int, int]: ...
