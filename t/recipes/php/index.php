<?php
// The recipes etc/recipes/php-fpm.json and php-cgi.json serve this
// directory: PHP through php-fpm or a php-cgi pool, the rest as files.
header('Content-Type: text/plain; charset=utf-8');
echo "sapi=", PHP_SAPI, " pid=", getmypid(), "\n";
echo "SCRIPT_NAME=", $_SERVER['SCRIPT_NAME'], " PATH_INFO=", $_SERVER['PATH_INFO'] ?? '', "\n";
if ($_SERVER['REQUEST_METHOD'] === 'POST') {
	echo "name=", $_POST['name'] ?? '', "\n";
}
if (isset($_SERVER['PHP_AUTH_USER'])) {
	echo "user=", $_SERVER['PHP_AUTH_USER'], "\n";
}
