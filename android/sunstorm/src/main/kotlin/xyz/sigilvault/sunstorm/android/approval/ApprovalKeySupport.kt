package xyz.sigilvault.sunstorm.android.approval

import android.hardware.biometrics.BiometricPrompt
import java.math.BigInteger
import java.security.interfaces.ECPublicKey
import xyz.sigilvault.sunstorm.ApprovalKeyException

/**
 * The pure parts of [KeystoreApprovalKey], apart so that they load without the Keystore
 * classes (the JVM tests in android/jvm-check check them): what each `BiometricPrompt`
 * error means for the core, and the SEC1 encoding of the public key.
 */
object ApprovalKeySupport {
    /** What a `BiometricPrompt` error code means for the core. */
    fun promptError(errorCode: Int, errString: CharSequence): ApprovalKeyException = when (errorCode) {
        BiometricPrompt.BIOMETRIC_ERROR_USER_CANCELED,
        BiometricPrompt.BIOMETRIC_ERROR_CANCELED,
        BiometricPrompt.BIOMETRIC_ERROR_TIMEOUT -> ApprovalKeyException.Cancelled()
        BiometricPrompt.BIOMETRIC_ERROR_LOCKOUT,
        BiometricPrompt.BIOMETRIC_ERROR_LOCKOUT_PERMANENT -> ApprovalKeyException.LockedOut()
        BiometricPrompt.BIOMETRIC_ERROR_NO_BIOMETRICS,
        BiometricPrompt.BIOMETRIC_ERROR_HW_NOT_PRESENT -> ApprovalKeyException.NoBiometrics()
        else -> ApprovalKeyException.Failed("biometric prompt error $errorCode: $errString")
    }

    /** SEC1 uncompressed `0x04 || x || y` (the core's format; `PublicKey.encoded` is X.509). */
    fun sec1(key: ECPublicKey): ByteArray = byteArrayOf(4) + fixed32(key.w.affineX) + fixed32(key.w.affineY)

    private fun fixed32(n: BigInteger): ByteArray {
        val b = n.toByteArray().dropWhile { it == 0.toByte() }.toByteArray()
        if (b.size > 32) throw ApprovalKeyException.Failed("not a P-256 key")
        return ByteArray(32 - b.size) + b
    }
}
