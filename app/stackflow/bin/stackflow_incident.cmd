@echo off
rem StackFlow for Splunk: alert action stackflow_incident (Windows). splunkd runs this file
rem with --execute and the JSON payload on stdin.
"%~dp0..\windows_x86_64\bin\stackflow.exe" alert incident %*
exit /b %ERRORLEVEL%
