/** Ferry's version, reported by `--version` and `/server_info`. @module */
export const VERSION = "0.1.0";
