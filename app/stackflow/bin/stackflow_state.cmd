@echo off
rem StackFlow for Splunk: modular input stackflow_state (Windows). splunkd runs this file
rem with --scheme, --validate-arguments or no argument, configuration XML on stdin.
"%~dp0..\windows_x86_64\bin\stackflow.exe" state %*
exit /b %ERRORLEVEL%
