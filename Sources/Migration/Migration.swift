// Migration module
