package xyz.sigilvault.sunstorm.android.secrets

import android.content.Context
import android.content.SharedPreferences
import android.security.keystore.KeyGenParameterSpec
import android.security.keystore.KeyPermanentlyInvalidatedException
import android.security.keystore.KeyProperties
import android.security.keystore.UserNotAuthenticatedException
import android.util.Base64
import java.security.GeneralSecurityException
import java.security.KeyStore
import javax.crypto.Cipher
import javax.crypto.KeyGenerator
import javax.crypto.SecretKey
import javax.crypto.spec.GCMParameterSpec
import xyz.sigilvault.sunstorm.SecretStore
import xyz.sigilvault.sunstorm.SecretStoreException

/**
 * The core's [SecretStore] on the Android Keystore: one non-exportable AES-256-GCM key
 * (alias [KEY_ALIAS], hardware-backed where the device has it, StrongBox when asked)
 * wraps each value; the ciphertexts live in a private SharedPreferences file that is
 * excluded from backup (see the sample's `data_extraction_rules.xml`), so a restored
 * backup never carries keys to another device.
 *
 * Each value is stored as `base64(iv(12) || ciphertext+tag)`; the secret's name is bound
 * as GCM associated data, so a ciphertext moved to another name fails to decrypt.
 * Values are the phone's private keys: never logged.
 */
class KeystoreSecretStore(
    context: Context,
    private val strongBox: Boolean = false,
) : SecretStore {
    private val prefs: SharedPreferences =
        context.getSharedPreferences(PREFS_NAME, Context.MODE_PRIVATE)
    private val lock = Any()

    override fun get(name: String): ByteArray? = guard {
        val stored = prefs.getString(name, null) ?: return@guard null
        val blob = Base64.decode(stored, Base64.NO_WRAP)
        if (blob.size <= IV_BYTES) throw SecretStoreException.Failed("stored value for $name is truncated")
        val cipher = Cipher.getInstance(TRANSFORMATION)
        cipher.init(Cipher.DECRYPT_MODE, key(), GCMParameterSpec(TAG_BITS, blob, 0, IV_BYTES))
        cipher.updateAAD(name.toByteArray(Charsets.UTF_8))
        cipher.doFinal(blob, IV_BYTES, blob.size - IV_BYTES)
    }

    override fun put(name: String, value: ByteArray): Unit = guard {
        val cipher = Cipher.getInstance(TRANSFORMATION)
        cipher.init(Cipher.ENCRYPT_MODE, key()) // the Keystore picks a fresh random IV
        cipher.updateAAD(name.toByteArray(Charsets.UTF_8))
        val sealed = cipher.iv + cipher.doFinal(value)
        if (!prefs.edit().putString(name, Base64.encodeToString(sealed, Base64.NO_WRAP)).commit()) {
            throw SecretStoreException.Failed("could not write the secret file")
        }
    }

    override fun delete(name: String): Unit = guard {
        if (!prefs.edit().remove(name).commit()) throw SecretStoreException.Failed("could not write the secret file")
    }

    private fun <T> guard(block: () -> T): T = synchronized(lock) {
        try {
            block()
        } catch (e: SecretStoreException) {
            throw e
        } catch (e: KeyPermanentlyInvalidatedException) {
            throw SecretStoreException.Unavailable("the Keystore key was invalidated")
        } catch (e: UserNotAuthenticatedException) {
            throw SecretStoreException.Unavailable("the device must be unlocked")
        } catch (e: GeneralSecurityException) {
            throw SecretStoreException.Failed("Keystore: ${e.javaClass.simpleName}")
        } catch (e: IllegalArgumentException) {
            throw SecretStoreException.Failed("stored value is not readable")
        }
    }

    private fun key(): SecretKey {
        val ks = KeyStore.getInstance(ANDROID_KEYSTORE).apply { load(null) }
        (ks.getKey(KEY_ALIAS, null) as? SecretKey)?.let { return it }
        val spec = KeyGenParameterSpec.Builder(KEY_ALIAS, KeyProperties.PURPOSE_ENCRYPT or KeyProperties.PURPOSE_DECRYPT)
            .setBlockModes(KeyProperties.BLOCK_MODE_GCM)
            .setEncryptionPaddings(KeyProperties.ENCRYPTION_PADDING_NONE)
            .setKeySize(256)
            .setRandomizedEncryptionRequired(true)
            .setIsStrongBoxBacked(strongBox)
            .build()
        return KeyGenerator.getInstance(KeyProperties.KEY_ALGORITHM_AES, ANDROID_KEYSTORE).run {
            init(spec)
            generateKey()
        }
    }

    /** Storage names. */
    companion object {
        /** The Keystore alias of the wrapping key. */
        const val KEY_ALIAS = "sunstorm.secret-store.v1"

        /** The SharedPreferences file holding the wrapped values (exclude it from backup). */
        const val PREFS_NAME = "sunstorm_secrets"

        private const val ANDROID_KEYSTORE = "AndroidKeyStore"
        private const val TRANSFORMATION = "AES/GCM/NoPadding"
        private const val IV_BYTES = 12
        private const val TAG_BITS = 128
    }
}
