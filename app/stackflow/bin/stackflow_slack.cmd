@echo off
rem StackFlow for Splunk: alert action stackflow_slack (Windows). splunkd runs this file
rem with --execute and the JSON payload on stdin.
"%~dp0..\windows_x86_64\bin\stackflow.exe" alert slack %*
exit /b %ERRORLEVEL%
