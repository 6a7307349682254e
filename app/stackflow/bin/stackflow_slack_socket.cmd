@echo off
rem StackFlow for Splunk: modular input stackflow_slack_socket (Windows). splunkd runs this file
rem with --scheme, --validate-arguments or no argument, configuration XML on stdin.
"%~dp0..\windows_x86_64\bin\stackflow.exe" slack listen %*
exit /b %ERRORLEVEL%
