"""The IEEE 11073-10101 (MDC) terms Vigil reads and writes in HL7: each reference id and its
numeric code. Metrics are partition 2 (SCADA) codes, 2 * 65536 + term; units partition 4,
4 * 65536 + n. The gateway reads them (gateway_app/pcd01.py), the simulator writes them
(patient_app/oru.py): one table, so the two cannot drift apart."""

TERMS: dict[str, str] = {
    "MDC_ECG_HEART_RATE": "147842",
    "MDC_PULS_OXIM_PULS_RATE": "149530",
    "MDC_PULS_RATE_NON_INV": "149546",
    "MDC_RESP_RATE": "151562",
    "MDC_AWAY_RESP_RATE": "151570",
    "MDC_PULS_OXIM_SAT_O2": "150456",
    "MDC_PRESS_BLD_NONINV_SYS": "150021",
    "MDC_PRESS_BLD_NONINV_DIA": "150022",
    "MDC_TEMP_BODY": "150364",
    "MDC_TEMP_ORAL": "150380",
    "MDC_TEMP_AXILLA": "150384",
    "MDC_TEMP_RECT": "150388",
    "MDC_TEMP_TYMP": "150392",
}
UNITS: dict[str, str] = {
    "MDC_DIM_BEAT_PER_MIN": "264864",
    "MDC_DIM_RESP_PER_MIN": "264928",
    "MDC_DIM_PERCENT": "262688",
    "MDC_DIM_MMHG": "266016",
    "MDC_DIM_DEGC": "268192",
    "MDC_DIM_FAHR": "266560",
}


def coded(name: str) -> str:
    """A term or unit as an OBX's CWE carries it: code^reference id^MDC."""
    return f"{TERMS.get(name) or UNITS[name]}^{name}^MDC"
