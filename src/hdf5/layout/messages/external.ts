/** External Data Files message (0x0007): only its presence matters to layout (raw data lives in other files). */
export const MSG_EXTERNAL_FILES = 0x0007;
